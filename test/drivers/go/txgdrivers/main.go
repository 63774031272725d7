// txgdrivers: the three field reports behind pg_txguard, reproduced with
// the Go drivers lib/pq and pgx v4, for t/061_go.pl.
//
// Built offline from Debian's packages (golang-go,
// golang-github-lib-pq-dev, golang-github-jackc-pgx-v4-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off go build -o txgdrivers .
//
// Usage: txgdrivers SCENARIO DRIVER DSN, DRIVER "pq" or "pgx".  Each
// scenario prints "key=value" lines; the TAP test checks them against what
// the server recorded.
//
//	shared-tx   one transaction used by two goroutines: one reads rows while
//	            the other runs a statement on the same connection; the driver
//	            fails and the connection is dropped with the transaction open
//	leak        a request returns without Rollback() while holding a row
//	            FOR UPDATE; a second request waits for that row
//	dupes       check-then-insert from many goroutines (a table without a
//	            unique index), then txguard.insert_or_get from the same
//	            goroutines (a table with one)
//	errors      what database/sql returns when the transaction timeout
//	            cancels a statement, and when it terminates the session idle
//	            in its transaction (run as a role with a 1 s limit)
package main

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgconn"
	"github.com/jackc/pgx/v4"
	_ "github.com/jackc/pgx/v4/stdlib"
	"github.com/lib/pq"
)

func out(key string, value interface{}) {
	fmt.Printf("%s=%v\n", key, value)
}

func sqlDriver(driver string) string {
	if driver == "pgx" {
		return "pgx"
	}
	return "postgres"
}

// shared-tx with lib/pq, through database/sql: goroutine A iterates the
// rows of a query while goroutine B runs an UPDATE on the same *sql.Tx.
// lib/pq reads A's rows where it expects B's ParseComplete ("pq: unexpected
// Parse response") and marks the connection bad; database/sql then closes
// it, with the transaction still open on the server.
func sharedTxPq(dsn string) {
	db, err := sql.Open("postgres", dsn+" application_name=shared-tx-pq")
	check(err)
	defer db.Close()
	tx, err := db.Begin()
	check(err)
	_, err = tx.Exec("UPDATE orders SET state = 'reserved' WHERE id = 1")
	check(err)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	started := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		rows, err := tx.Query("SELECT g FROM generate_series(1, 200000) g")
		if err != nil {
			errs[0] = err
			close(started)
			return
		}
		close(started)
		for rows.Next() {
			var g int
			if err := rows.Scan(&g); err != nil {
				errs[0] = err
				break
			}
		}
		if err := rows.Err(); err != nil && errs[0] == nil {
			errs[0] = err
		}
		rows.Close()
	}()
	go func() {
		defer wg.Done()
		<-started
		_, errs[1] = tx.Exec("UPDATE orders SET state = 'shipped' WHERE id = $1", 2)
	}()
	wg.Wait()
	out("reader_error", errs[0])
	out("writer_error", errs[1])
	out("rollback_error", tx.Rollback())
}

// shared-tx with pgx v4: goroutine A iterates the rows of a query while
// goroutine B runs an UPDATE on the same pgx.Tx and gets "conn busy"; B's
// request gives up and its deferred Rollback fails too ("conn busy"),
// which makes pgx close the connection, with the transaction open.
func sharedTxPgx(dsn string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn+" application_name=shared-tx-pgx")
	check(err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	check(err)
	_, err = tx.Exec(ctx, "UPDATE orders SET state = 'reserved' WHERE id = 1")
	check(err)

	rows, err := tx.Query(ctx, "SELECT g FROM generate_series(1, 200000) g")
	check(err)
	done := make(chan struct{})
	var writerErr, rollbackErr error
	go func() {
		defer close(done)
		// the request handler of goroutine B
		func() {
			defer func() { rollbackErr = tx.Rollback(ctx) }()
			_, writerErr = tx.Exec(ctx, "UPDATE orders SET state = 'shipped' WHERE id = $1", 2)
		}()
	}()
	<-done
	n := 0
	for rows.Next() {
		n++
	}
	out("reader_error", rows.Err())
	rows.Close()
	out("writer_error", writerErr)
	out("rollback_error", rollbackErr)
	out("conn_closed", conn.IsClosed())
}

// leak: a request locks a row and returns on an error path without
// Rollback(); the transaction stays open, idle, on a connection the pool
// cannot reuse.  A second request then updates the same row and waits,
// until pg_txguard (the timeout or the sentinel) ends the leaked one.
func leak(driver, dsn string) {
	db, err := sql.Open(sqlDriver(driver), dsn+" application_name=leak-"+driver)
	check(err)
	defer db.Close()

	request := func() error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow("SELECT n FROM stock WHERE id = 1 FOR UPDATE").Scan(&n); err != nil {
			return err
		}
		if n < 1000 {
			return errors.New("not enough stock") // the missing tx.Rollback()
		}
		return tx.Commit()
	}
	out("first_request", request())

	// The waiting request runs under a longer limit of its own: under the
	// role's 1 s it would start a few milliseconds after the leaked
	// transaction and reach its own deadline just after that one ends.
	start := time.Now()
	err = func() error {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.Exec("SET LOCAL txguard.transaction_timeout = '10s'"); err != nil {
			return err
		}
		if _, err := tx.Exec("UPDATE stock SET n = n + 1 WHERE id = 1"); err != nil {
			return err
		}
		return tx.Commit()
	}()
	out("second_request", err)
	out("waited_ms", time.Since(start).Milliseconds())
}

// dupes: the same 20 new e-mail addresses requested by 16 goroutines at
// once, each doing check-then-insert (SELECT, some work, INSERT), then
// txguard.insert_or_get.
func dupes(driver, dsn string) {
	db, err := sql.Open(sqlDriver(driver), dsn+" application_name=dupes-"+driver)
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(16)

	const goroutines = 16
	const keys = 20
	run := func(one func(email string) error) (errs int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		gate := make(chan struct{})
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				for k := 0; k < keys; k++ {
					if err := one(fmt.Sprintf("user%d@example.com", k)); err != nil {
						mu.Lock()
						errs++
						mu.Unlock()
					}
				}
			}()
		}
		close(gate)
		wg.Wait()
		return errs
	}

	checkThenInsert := func(email string) error {
		var id int64
		err := db.QueryRow("SELECT id FROM signups WHERE email = $1", email).Scan(&id)
		if err == nil {
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		time.Sleep(2 * time.Millisecond) // the application decides
		_, err = db.Exec("INSERT INTO signups (email) VALUES ($1)", email)
		return err
	}
	insertOrGet := func(email string) error {
		var id int64
		return db.QueryRow(
			"SELECT id FROM txguard.insert_or_get(NULL::users, jsonb_build_object('email', $1::text))",
			email).Scan(&id)
	}

	out("check_then_insert_errors", run(checkThenInsert))
	out("insert_or_get_errors", run(insertOrGet))
	var rows, distinct int
	check(db.QueryRow("SELECT count(*), count(DISTINCT email) FROM signups").Scan(&rows, &distinct))
	out("check_then_insert_rows", rows)
	out("check_then_insert_distinct", distinct)
	check(db.QueryRow("SELECT count(*), count(DISTINCT email) FROM users").Scan(&rows, &distinct))
	out("insert_or_get_rows", rows)
	out("insert_or_get_distinct", distinct)
}

// the SQLSTATE a driver's error carries, "" for none
func sqlstate(err error) string {
	var pqe *pq.Error
	var pge *pgconn.PgError
	if errors.As(err, &pqe) {
		return string(pqe.Code)
	}
	if errors.As(err, &pge) {
		return pge.Code
	}
	return ""
}

func errorsScenario(driver, dsn string) {
	db, err := sql.Open(sqlDriver(driver), dsn+" application_name=errors-"+driver)
	check(err)
	defer db.Close()

	// a statement running at the deadline is cancelled
	tx, err := db.Begin()
	check(err)
	_, err = tx.Exec("SELECT pg_sleep(3)")
	out("cancel_error", err)
	out("cancel_sqlstate", sqlstate(err))
	out("cancel_rollback", tx.Rollback())
	var one int
	out("after_rollback", db.QueryRow("SELECT 1").Scan(&one))

	// a transaction idle at the deadline: its session is terminated
	tx, err = db.Begin()
	check(err)
	_, err = tx.Exec("SELECT 1")
	check(err)
	time.Sleep(1500 * time.Millisecond)
	_, err = tx.Exec("SELECT 2")
	out("idle_error", err)
	out("idle_sqlstate", sqlstate(err))
	out("idle_bad_conn", errors.Is(err, sqldriver.ErrBadConn))
	out("idle_rollback", tx.Rollback())
	out("after_idle", db.QueryRow("SELECT 1").Scan(&one))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "txgdrivers:", err)
		os.Exit(2)
	}
}

func main() {
	if len(os.Args) != 4 || (os.Args[2] != "pq" && os.Args[2] != "pgx") {
		fmt.Fprintln(os.Stderr, "usage: txgdrivers shared-tx|leak|dupes|errors pq|pgx DSN")
		os.Exit(2)
	}
	scenario, driver, dsn := os.Args[1], os.Args[2], os.Args[3]
	switch {
	case scenario == "shared-tx" && driver == "pq":
		sharedTxPq(dsn)
	case scenario == "shared-tx" && driver == "pgx":
		sharedTxPgx(dsn)
	case scenario == "leak":
		leak(driver, dsn)
	case scenario == "dupes":
		dupes(driver, dsn)
	case scenario == "errors":
		errorsScenario(driver, dsn)
	default:
		fmt.Fprintln(os.Stderr, "txgdrivers: unrecognized scenario", scenario)
		os.Exit(2)
	}
}
