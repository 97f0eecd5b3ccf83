-- opscore repository: secrets scrubbing of what older versions stored, and the ASH sampler lease.
--
-- Statement texts read from targets are scrubbed at capture (ops_core.collectors.scrub) since
-- this version. Older repositories may hold passwords verbatim: pg_stat_statements keeps
-- utility statements (ALTER ROLE ... PASSWORD '...') unnormalized and ASH keeps running texts.
-- opscore.scrub_secrets() is the conservative SQL form of the scrubber: it redacts the literal
-- after a PASSWORD keyword (to the end of the text when its end cannot be told), conninfo
-- password= values and URL passwords. This migration applies it to every text and jsonb column
-- of the opscore schema (statement texts, ADDM findings, settings values, errors, ...), so
-- columns added by earlier migrations are covered without being listed.

CREATE FUNCTION opscore.scrub_secrets(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
  SELECT CASE WHEN t !~* 'password|://[^[:space:]/@]*:[^[:space:]@]*@' THEN t ELSE
    regexp_replace(
      regexp_replace(
        regexp_replace(
          regexp_replace(t,
            -- PASSWORD 'literal' / E'literal' / "password" 'literal' / password => 'literal'
            '(password"?([[:space:]]|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*\n|=>?)*)[eE]?''([^''\\]|''''|\\.)*(''|$)',
            '\1''<redacted>''', 'gi'),
          -- PASSWORD $tag$...: to the end of the text (conservative)
          '(password"?([[:space:]]|/\*([^*]|\*+[^*/])*\*+/|--[^\n]*\n|=>?)*)\$[A-Za-z_0-9]*\$.*$', '\1''<redacted>''', 'gi'),
        -- conninfo password=value; a quoted value: to the end of the text (conservative)
        '(password[[:space:]]*=(?!>)[[:space:]]*)(([^[:space:]''\\]|\\.)+|[\\''].*$)', '\1<redacted>', 'gi'),
      -- URL scheme://user:password@host
      '([a-z][a-z0-9+.-]*://[^[:space:]/@:'']*:)[^[:space:]@'']*@', '\1<redacted>@', 'gi')
  END
$fn$;

COMMENT ON FUNCTION opscore.scrub_secrets(text) IS
    'Redact passwords from a statement text or conninfo (SQL form of ops_core.collectors.scrub)';

CREATE FUNCTION opscore.scrub_secrets(j jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
    result jsonb;
BEGIN
    CASE jsonb_typeof(j)
    WHEN 'string' THEN
        RETURN to_jsonb(opscore.scrub_secrets(j #>> '{}'));
    WHEN 'array' THEN
        SELECT coalesce(jsonb_agg(opscore.scrub_secrets(e) ORDER BY n), '[]'::jsonb) INTO result
          FROM jsonb_array_elements(j) WITH ORDINALITY AS a(e, n);
        RETURN result;
    WHEN 'object' THEN
        SELECT coalesce(jsonb_object_agg(k, opscore.scrub_secrets(v)), '{}'::jsonb) INTO result
          FROM jsonb_each(j) AS o(k, v);
        RETURN result;
    ELSE
        RETURN j;
    END CASE;
END
$fn$;

DO $do$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT a.attrelid::regclass AS rel, a.attname, t.typname
          FROM pg_attribute a
          JOIN pg_class r ON r.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = r.relnamespace
          JOIN pg_type t ON t.oid = a.atttypid
         WHERE n.nspname = 'opscore' AND r.relkind IN ('r', 'p') AND NOT r.relispartition
           AND a.attnum > 0 AND NOT a.attisdropped AND t.typname IN ('text', 'jsonb')
           -- ash_samples (high volume) holds names and states, its texts are in ash_query_texts
           AND r.relname NOT IN ('schema_migrations', 'targets', 'ash_samples')
           AND a.attgenerated = ''
    LOOP
        EXECUTE format(
            'UPDATE %s SET %I = opscore.scrub_secrets(%I) WHERE %I::text ~* %L '
            'AND opscore.scrub_secrets(%I) IS DISTINCT FROM %I',
            c.rel, c.attname, c.attname, c.attname,
            'password|://[^[:space:]/@]*:[^[:space:]@]*@', c.attname, c.attname);
    END LOOP;
END
$do$;

-- One ASH sampler per target: the sampler holds a session advisory lock (classid 16723,
-- objid target_id) on a repository connection while it runs; this row says who it is.
CREATE TABLE opscore.ash_sampler_lease (
    target_id    int PRIMARY KEY REFERENCES opscore.targets ON DELETE CASCADE,
    holder       text NOT NULL,         -- host, pid and command of the sampler
    backend_pid  int NOT NULL,          -- its repository session (holds the advisory lock)
    acquired_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE opscore.ash_sampler_lease IS
    'The ASH sampler of each target (the lock is pg_advisory_lock(16723, target_id))';
