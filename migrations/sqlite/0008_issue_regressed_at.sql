-- When the issue last regressed (a new event on a resolved issue, SPEC §3), in unix ms;
-- NULL when it never did or its status was changed by hand since (resolved, archived,
-- discarded or reopened clear it). The dashboard marks an unresolved issue "regressed"
-- while this is set and less than 7 days old, as Sentry's Regressed substatus.
ALTER TABLE issues ADD COLUMN regressed_at INTEGER;
