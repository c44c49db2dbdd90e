-- Numbered cache invalidations, so an app server's listener that was not
-- listening for a while (a new leader after its child exited, a lost
-- connection) applies what it missed instead of serving stale entries or
-- emptying its cache. The listener prunes old rows.
CREATE TABLE cache_changes (
    seq     bigserial PRIMARY KEY,
    payload text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cache_changes_at ON cache_changes (at);

-- Every invalidation goes through here: logged, then sent as 'SEQ TOKENS'
-- (docs/DATA.md). NOTIFY is delivered at commit, so the log row and the
-- notification appear together.
CREATE FUNCTION esf_publish_cache_change(tokens text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    INSERT INTO cache_changes (payload) VALUES (tokens) RETURNING seq INTO n;
    PERFORM pg_notify('esf_cache', n || ' ' || tokens);
END
$$;

CREATE OR REPLACE FUNCTION esf_send_cache_notification(touched bigint, tokens text, prefix_form text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF touched = 0 THEN
        RETURN;
    END IF;
    IF touched > esf_notify_row_limit() OR tokens IS NULL OR octet_length(tokens) >= 7900 THEN
        tokens := prefix_form;
    END IF;
    PERFORM esf_publish_cache_change(tokens);
END
$$;

CREATE OR REPLACE FUNCTION esf_notify_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM esf_publish_cache_change(TG_ARGV[0]);
    RETURN NULL;
END
$$;
