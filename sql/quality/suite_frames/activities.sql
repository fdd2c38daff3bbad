-- What the activities suite (expectations/activities.json) validates: the
-- structure columns, read leniently (an empty or unreadable value becomes null
-- for the not-null expectations to report), and in place of the note, which is
-- PHI and never reaches Data Docs, the measures the documentation rules use.
-- Reads validation_source: a drop's raw rows, or a frame handed to validate_table.
with typed_rows as (
    select
        nullif(trim(activity_id::varchar), '') as activity_id,
        nullif(trim(patient_id::varchar), '') as patient_id,
        nullif(trim(staff_id::varchar), '') as staff_id,
        try_cast(started_at as timestamptz) as started_at,
        try_cast(duration_minutes as integer) as duration_minutes,
        nullif(trim(activity_type::varchar), '') as activity_type,
        try_cast(face_to_face as boolean) as face_to_face,
        note_words(note::varchar) as note_words,
        try_cast(documented_at as timestamptz) as documented_at,
        nullif(trim(status::varchar), '') as status,
        _drop,
        _row_number
    from validation_source
)
select
    activity_id,
    patient_id,
    staff_id,
    started_at,
    duration_minutes,
    activity_type,
    face_to_face,
    documented_at,
    status,
    _drop,
    _row_number,
    len(note_words) as note_words,
    words_are_generic(note_words) as note_is_generic,
    round((epoch(documented_at) - epoch(started_at + to_minutes(duration_minutes))) / 3600, 2) as hours_to_document,
    documented_at >= started_at as documented_after_start,
    started_at < drop_closes_at(_drop) as started_by_drop_date
from typed_rows
