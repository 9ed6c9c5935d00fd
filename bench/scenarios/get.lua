-- One fixed GET, the URL on wrk's command line (verified on every server first), built
-- once by wrk (no request() function): the lists, the people, the ceilings.
require("common").install()
