-- One fixed GET: the URL on wrk's command line, which the driver verified on
-- both servers first. Used by list 10, list 100, filtered list, the ceilings.
-- No request() function, so wrk sends one request built once in init().
require("common").install()
