-- vague (hold): a note an auditor could not tie to specific work. Empty, fewer
-- than documentation.vague_min_words words once numbers and duration words are
-- stripped, or nothing but the configured generic phrases ("Patient call - 5
-- minutes"). Holds the whole activity until a later drop amends the note.
with active_versions as (
    select activity_id, drop_name, duration_minutes, note, note_words(note) as words
    from quality_run_versions
    where status = 'active'
),
measured_notes as (
    select
        *,
        len(words) as content_words,
        words_are_generic(words) as generic_only
    from active_versions
)
select
    activity_id,
    drop_name,
    'vague' as flag_code,
    'hold' as severity,
    case
        when trim(coalesce(note, '')) = '' then 'note is empty'
        when content_words = 0 then 'note states only a duration'
        when generic_only then 'note gives only a generic phrase (documentation.vague_phrases), not what was done'
        else format('note has {} words once numbers and duration words are left out', content_words)
    end as message,
    case
        when generic_only and content_words >= getvariable('quality_vague_min_words') then 'not only a generic phrase'
        else format('{} words', getvariable('quality_vague_min_words'))
    end as threshold,
    greatest(duration_minutes, 0) as held_minutes
from measured_notes
where content_words < getvariable('quality_vague_min_words') or generic_only
