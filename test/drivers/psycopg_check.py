#!/usr/bin/env python3
"""What a psycopg 3 application sees of pg_txguard's timeout.

Run by t/062_psycopg.pl:  psycopg_check.py CONNINFO
Prints one "name=value" line per observation; the TAP test checks them.

- a statement cancelled by txguard.transaction_timeout raises an error
  whose sqlstate is 25P04, and the connection works after rollback();
- a session terminated while idle in its transaction: the next statement
  raises OperationalError; its sqlstate, and that of core's
  idle_in_transaction_session_timeout for comparison.
"""
import sys
import time

import psycopg


def report(name, value):
    print(f"{name}={value}", flush=True)


def cancelled(conninfo):
    with psycopg.connect(conninfo) as conn:
        conn.execute("SET txguard.transaction_timeout = '300ms'")
        conn.commit()
        try:
            conn.execute("SELECT pg_sleep(3)")
            report("cancel_raised", "no")
        except psycopg.Error as e:
            report("cancel_raised", "yes")
            report("cancel_class", type(e).__name__)
            report("cancel_sqlstate", e.sqlstate)
            report("cancel_status", conn.info.transaction_status.name)
        conn.rollback()
        report("after_rollback", conn.execute("SELECT 'works'").fetchone()[0])


def idle_terminated(conninfo, setting, value):
    conn = psycopg.connect(conninfo)
    conn.execute(f"SET {setting} = '{value}'")
    conn.commit()
    conn.execute("SELECT 1")  # opens a transaction (autocommit is off)
    time.sleep(1.5)
    try:
        conn.execute("SELECT 2")
        return ("none", "", False)
    except psycopg.Error as e:
        return (type(e).__name__, e.sqlstate, conn.closed)
    finally:
        conn.close()


def main():
    conninfo = sys.argv[1]
    cancelled(conninfo)
    cls, sqlstate, closed = idle_terminated(conninfo, "txguard.transaction_timeout", "500ms")
    report("idle_class", cls)
    report("idle_sqlstate", sqlstate)
    report("idle_closed", closed)
    cls, sqlstate, closed = idle_terminated(conninfo, "idle_in_transaction_session_timeout", "500ms")
    report("core_idle_class", cls)
    report("core_idle_sqlstate", sqlstate)


if __name__ == "__main__":
    main()
