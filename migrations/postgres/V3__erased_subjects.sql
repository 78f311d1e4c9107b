-- Shared by both dialects (migrations/sqlite/V3__erased_subjects.sql links here).
-- Every query hides erased subjects; this keeps listing them cheap however many subjects an
-- organization has.
CREATE INDEX subjects_erased ON subjects (org_id, id) WHERE erased_at IS NOT NULL;
