-- mymoviedb's two roles (deploy/README.md, "Least privilege"). Run once, as a
-- superuser, on the server and database the application uses:
--
--   psql -v owner=mymoviedb_owner -v owner_password=… -v app=mymoviedb_app \
--        -v app_password=… -v database=mymoviedb -f deploy/roles.sql
--
-- :owner owns the database, its schema and every table: the migrate job connects
--        as it, and only it changes the schema.
-- :app   reads and writes rows, nothing else: the admin, the API and PgBouncer
--        connect as it. It cannot create, alter, drop or truncate a table.
\set ON_ERROR_STOP on

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
ALTER DATABASE :"database" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"app";

\connect :"database"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"app";
-- The rows of the tables the owner's migrations create from now on...
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
-- ...and of those already there (a database migrated before the roles existed,
-- whose tables then need ALTER TABLE ... OWNER TO the owner as well).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";
