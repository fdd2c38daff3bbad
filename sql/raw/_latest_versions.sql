-- The fingerprint of the newest stored version of every key, one table per
-- keyed landing table: what lets ingest skip a row identical to the version it
-- would replace (drops overlap, and every drop carries full reference
-- snapshots). _key_hash = hash(key columns), _row_hash = hash(every contract
-- column, typed), _text_hash = hash of the landing text that row was typed
-- from, with the typing rules and time zone (null when rebuilt from raw): a
-- row with the same _text_hash is unchanged without being typed again.
-- Ingest state, not data: a hash collision or a DuckDB upgrade
-- that changes hash() can only make a row look changed, and so be stored once
-- more, never lose one (an identical 64-bit hash of two different versions of
-- one key is a 2^-64 chance per amendment). Rebuilt from raw when empty.
create table if not exists raw.latest_patients   (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_staff      (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_conditions (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_consents   (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_care_plans (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_encounters (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
create table if not exists raw.latest_activities (_key_hash ubigint not null, _row_hash ubigint not null, _text_hash ubigint);
