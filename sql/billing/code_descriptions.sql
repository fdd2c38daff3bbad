-- billing.code_descriptions: the X12 and CMS code lists responses use, in
-- words (transforms/billing/codes/, loaded every run): TA1, 999, 277CA status
-- codes, CLP02, CARC, RARC, PLB. The marts join it to say why.
create table if not exists billing.code_descriptions (
    code_list   varchar not null,
    code        varchar not null,
    description varchar not null,
    source      varchar not null,
    primary key (code_list, code)
);
