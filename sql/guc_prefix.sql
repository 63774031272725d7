--
-- guc_prefix: the "txguard" prefix is reserved
--
-- From PostgreSQL 15 on, MarkGUCPrefixReserved() makes a misspelt
-- txguard.* setting an error.  13 and 14 have only
-- EmitWarningsOnPlaceholders(), which warns about the placeholders that
-- exist when the library loads: a txguard.* setting made later is kept as
-- a placeholder, as guc_prefix_1.out shows.
SET txguard.no_such_setting = 1;
SHOW txguard.no_such_setting;
