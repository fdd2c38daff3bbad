-- Helpers shared by the flag rules (sql/quality/flag_*.sql) and the frames the GX
-- suites validate (sql/quality/suite_frames/), so both measure a note the same way.
-- Temporary: they live on the connection of the run that created them.
-- Variables set by transforms.quality: quality_vague_phrases (one regex of the
-- configured phrases, their words as note_words finds them), quality_phrase_words
-- (every word of those phrases), practice_tz.

-- The words of a note that say what was done: lower-cased runs of letters
-- (numbers and punctuation split words and are dropped), without the words that
-- only state a duration.
create or replace temp macro note_words(note) as
    list_filter(regexp_extract_all(lower(coalesce(note, '')), '\pL+'),
                lambda w: w not in ('duration', 'minute', 'minutes', 'min', 'mins'));

-- True when nothing is left of the words once every generic phrase is taken
-- out. The cheap test first: that can only happen when every word occurs in
-- some phrase (quality_phrase_words); the regex runs on those few notes only.
create or replace temp macro words_are_generic(words) as
    case
        when len(words) = 0 then false
        when len(list_filter(words, lambda w: not list_contains(getvariable('quality_phrase_words'), w))) > 0 then false
        else trim(regexp_replace(array_to_string(words, ' '), getvariable('quality_vague_phrases'), ' ', 'g')) = ''
    end;

-- A drop folder is named for its date; it holds nothing that starts after that
-- day ends in practice time. Null for a folder name that is not a date.
create or replace temp macro drop_closes_at(drop_name) as
    timezone(getvariable('practice_tz'), (try_strptime(left(drop_name, 10), '%Y-%m-%d')::date + 1)::timestamp);

-- NPI check digit: Luhn over the 80840 prefix (which adds a constant 24), as npi_is_valid in transforms/contract.py.
create or replace temp macro npi_check_digit_ok(npi) as
    case
        when npi is null then null
        when not regexp_full_match(npi, '[0-9]{10}') then false
        else (24 + list_sum(list_transform(range(1, 11), lambda i:
                case when i % 2 = 1
                     then (2 * cast(substr(npi, i, 1) as integer)) // 10 + (2 * cast(substr(npi, i, 1) as integer)) % 10
                     else cast(substr(npi, i, 1) as integer) end))) % 10 = 0
    end;

-- The shape of an identifying value, for GX to check formats on without Data
-- Docs ever showing the value: 1-9 -> 1, 0 stays, the letters an MBI allows -> A,
-- the other capitals (B I L O S Z) -> S, lower case -> a. Every format regex of
-- the suites gives the same answer on the shape as on the value.
create or replace temp macro phi_shape(value) as
    translate(value::varchar,
              '123456789ACDEFGHJKMNPQRTUVWXYBILOSZabcdefghijklmnopqrstuvwxyz',
              '111111111AAAAAAAAAAAAAAAAAAAASSSSSSaaaaaaaaaaaaaaaaaaaaaaaaaa');
