"""supabase/schema.sql on a real PostgreSQL with a Supabase shim: profiles, triggers, RLS, Storage.

Each check runs as the role a Supabase API request would use (`authenticated` with a JWT `sub`,
`anon`, `service_role`) inside a rolled-back transaction; see conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "supabase" / "schema.sql"

# Fixed ids so failures are readable. EARLY signs up before the schema exists (backfill).
USER_A = "aaaaaaaa-0000-4000-8000-00000000000a"
USER_B = "bbbbbbbb-0000-4000-8000-00000000000b"
USER_EARLY = "eeeeeeee-0000-4000-8000-00000000000e"

RLS_VIOLATION = "new row violates row-level security policy"


def create_auth_user(pg: Any, user_id: str, email: str, meta: dict[str, str] | None = None) -> None:
    """Insert into auth.users the way GoTrue does: as supabase_auth_admin, which has no rights in
    public, so the profile appears only because the trigger function is ``security definer``."""
    pg.run(
        "begin; set local role supabase_auth_admin;\n"
        "insert into auth.users (id, email, raw_user_meta_data) values "
        f"('{user_id}', '{email}', '{json.dumps(meta or {})}');\n"
        "commit;"
    )


@pytest.fixture(scope="module")
def pg(pg_cluster: Any) -> Any:
    """The shim cluster with schema.sql applied twice (it must be idempotent), users A and B
    signed up after it and EARLY before it."""
    create_auth_user(pg_cluster, USER_EARLY, "early@example.com", {"full_name": "Early Bird"})
    # As `postgres`, like the SQL editor: not a superuser, not the owner of auth/storage tables.
    pg_cluster.run_file(SCHEMA_SQL, user="postgres")
    pg_cluster.run_file(SCHEMA_SQL, user="postgres")
    create_auth_user(pg_cluster, USER_A, "a@example.com", {"display_name": "Ann"})
    create_auth_user(pg_cluster, USER_B, "b@example.com")
    return pg_cluster


def insert_object(bucket: str, name: str) -> str:
    """SQL for the row Storage writes when a file is uploaded to ``bucket``/``name``."""
    return f"insert into storage.objects (bucket_id, name) values ('{bucket}', '{name}');"


def denied(exc: pytest.ExceptionInfo[Any]) -> bool:
    """42501 is both 'permission denied' (grants) and an RLS violation on insert/update."""
    return exc.value.sqlstate == "42501"


# -- profiles ----------------------------------------------------------------------------------


def test_signup_creates_one_profile_per_user(pg: Any) -> None:
    c, d = "cccccccc-0000-4000-8000-00000000000c", "dddddddd-0000-4000-8000-00000000000d"
    rows = pg.run(
        "begin; set local role supabase_auth_admin;\n"
        "insert into auth.users (id, email, raw_user_meta_data) values "
        f"('{c}', 'c@example.com', '{{\"display_name\": \"  {'x' * 100}  \"}}'),"
        f"('{d}', 'd@example.com', null);\n"
        "reset role;\n"
        "select id, email, coalesce(display_name, '<null>') from public.profiles"
        f" where id in ('{c}', '{d}') order by id;\n"
        "rollback;"
    )
    # Metadata name trimmed and cut to the 80-char limit instead of failing the sign-up.
    assert rows == [[c, "c@example.com", "x" * 80], [d, "d@example.com", "<null>"]]


def test_fixture_users_and_backfill(pg: Any) -> None:
    rows = pg.run("select id, email, display_name from public.profiles order by email;")
    assert rows == [
        [USER_A, "a@example.com", "Ann"],
        [USER_B, "b@example.com", ""],
        # Signed up before the schema was applied: the backfill gave it a profile.
        [USER_EARLY, "early@example.com", "Early Bird"],
    ]


def test_user_sees_only_own_profile(pg: Any) -> None:
    rows = pg.as_role("select id, email from public.profiles;", role="authenticated", sub=USER_A)
    assert rows == [[USER_A, "a@example.com"]]
    # Even asking for B's row by id returns nothing.
    rows = pg.as_role(f"select count(*) from public.profiles where id = '{USER_B}';",
                      role="authenticated", sub=USER_A)
    assert rows == [["0"]]


def test_user_updates_own_display_name_only(pg: Any) -> None:
    rows = pg.as_role(
        "with u as (update public.profiles set display_name = 'Annie'"
        f" where id = '{USER_A}' returning 1) select count(*) from u;\n"
        "with u as (update public.profiles set display_name = 'pwned'"
        f" where id = '{USER_B}' returning 1) select count(*) from u;\n"
        "select display_name, updated_at > created_at from public.profiles;",
        role="authenticated", sub=USER_A,
        # Back-date the row so the updated_at trigger's now() is visibly later.
        setup=f"update public.profiles set created_at = now() - interval '1 day',"
              f" updated_at = now() - interval '1 day' where id = '{USER_A}';",
    )
    assert rows == [["1"], ["0"], ["Annie", "t"]]


@pytest.mark.parametrize("statement", [
    # Only display_name is granted for update: no changing email or id.
    "update public.profiles set email = 'x@evil.test' where id = '{a}'",
    "update public.profiles set id = '{b}' where id = '{a}'",
    "insert into public.profiles (id, email) values ('{a}', 'dup@example.com')",
    "delete from public.profiles where id = '{a}'",
])
def test_user_cannot_write_other_columns_insert_or_delete(pg: Any, statement: str) -> None:
    with pytest.raises(pg.Error) as exc:
        pg.as_role(statement.format(a=USER_A, b=USER_B) + ";", role="authenticated", sub=USER_A)
    assert denied(exc), exc.value


def test_display_name_is_bounded(pg: Any) -> None:
    with pytest.raises(pg.Error) as exc:
        pg.as_role(f"update public.profiles set display_name = repeat('x', 81) where id = '{USER_A}';",
                   role="authenticated", sub=USER_A)
    assert exc.value.sqlstate == "23514"  # check_violation


def test_anon_cannot_read_profiles(pg: Any) -> None:
    with pytest.raises(pg.Error) as exc:
        pg.as_role("select count(*) from public.profiles;", role="anon")
    assert denied(exc) and "permission denied" in exc.value.message


def test_email_change_and_user_deletion_follow_auth_users(pg: Any) -> None:
    rows = pg.run(
        "begin; set local role supabase_auth_admin;\n"
        f"update auth.users set email = 'a2@example.com' where id = '{USER_A}';\n"
        "reset role;\n"
        f"select email from public.profiles where id = '{USER_A}';\n"
        f"delete from auth.users where id = '{USER_B}';\n"
        f"select count(*) from public.profiles where id = '{USER_B}';\n"
        "rollback;"
    )
    assert rows == [["a2@example.com"], ["0"]]


def test_trigger_functions_not_callable_by_clients(pg: Any) -> None:
    rows = pg.run(
        "select p.proname, has_function_privilege(r, p.oid, 'execute')"
        " from pg_proc p cross join unnest(array['anon', 'authenticated']) r"
        " where p.pronamespace = 'public'::regnamespace order by 1, r;"
    )
    assert rows and all(ok == "f" for _, ok in rows), rows


# -- storage -----------------------------------------------------------------------------------

OBJECTS = (
    "insert into storage.objects (bucket_id, name) values"
    f" ('uploads', '{USER_A}/own.mp4'), ('uploads', '{USER_B}/other.mp4'),"
    f" ('results', '{USER_A}/t1/report.json'), ('results', '{USER_B}/t2/report.json');"
)


def test_buckets_exist_and_are_private(pg: Any) -> None:
    rows = pg.run(
        "select id, public, coalesce(file_size_limit::text, '-'), coalesce(allowed_mime_types::text, '-')"
        " from storage.buckets order by id;"
    )
    assert rows == [["results", "f", "-", "-"], ["uploads", "f", "524288000", "{video/*}"]]


def test_user_uploads_only_into_own_folder(pg: Any) -> None:
    rows = pg.as_role(
        insert_object("uploads", f"{USER_A}/video.mp4")
        + "select count(*) from storage.objects where bucket_id = 'uploads';",
        role="authenticated", sub=USER_A,
    )
    assert rows == [["1"]]
    for name in (f"{USER_B}/x.mp4", "x.mp4", f"uploads/{USER_A}/x.mp4"):
        with pytest.raises(pg.Error) as exc:
            pg.as_role(insert_object("uploads", name), role="authenticated", sub=USER_A)
        assert denied(exc) and RLS_VIOLATION in exc.value.message, name


def test_user_reads_updates_deletes_only_own_uploads(pg: Any) -> None:
    rows = pg.as_role(
        "select name from storage.objects where bucket_id = 'uploads';\n"
        "with u as (update storage.objects set metadata = '{}' where bucket_id = 'uploads'"
        " returning 1) select count(*) from u;\n"
        "with d as (delete from storage.objects where bucket_id = 'uploads' returning 1)"
        " select count(*) from d;\n",
        role="authenticated", sub=USER_A, setup=OBJECTS,
    )
    assert rows == [[f"{USER_A}/own.mp4"], ["1"], ["1"]]
    # A move must stay inside the owner's folder.
    with pytest.raises(pg.Error) as exc:
        pg.as_role(
            f"update storage.objects set name = '{USER_B}/stolen.mp4' where name = '{USER_A}/own.mp4';",
            role="authenticated", sub=USER_A, setup=OBJECTS,
        )
    assert denied(exc) and RLS_VIOLATION in exc.value.message


def test_user_reads_only_own_results_and_cannot_write_them(pg: Any) -> None:
    rows = pg.as_role("select name from storage.objects where bucket_id = 'results';",
                      role="authenticated", sub=USER_A, setup=OBJECTS)
    assert rows == [[f"{USER_A}/t1/report.json"]]
    with pytest.raises(pg.Error) as exc:
        pg.as_role(insert_object("results", f"{USER_A}/t9/fake.mp4"), role="authenticated", sub=USER_A)
    assert denied(exc) and RLS_VIOLATION in exc.value.message
    rows = pg.as_role(
        "with u as (update storage.objects set metadata = '{}' where bucket_id = 'results' returning 1)"
        " select count(*) from u;\n"
        "with d as (delete from storage.objects where bucket_id = 'results' returning 1)"
        " select count(*) from d;",
        role="authenticated", sub=USER_A, setup=OBJECTS,
    )
    assert rows == [["0"], ["0"]]


def test_anon_has_no_storage_access(pg: Any) -> None:
    assert pg.as_role("select count(*) from storage.objects;", role="anon", setup=OBJECTS) == [["0"]]
    with pytest.raises(pg.Error) as exc:
        pg.as_role(insert_object("uploads", f"{USER_A}/a.mp4"), role="anon")
    assert denied(exc) and RLS_VIOLATION in exc.value.message


def test_service_role_writes_results(pg: Any) -> None:
    rows = pg.as_role(
        insert_object("results", f"{USER_B}/t3/out.mp4")
        + "select count(*) from storage.objects where bucket_id = 'results';",
        role="service_role", setup=OBJECTS,
    )
    assert rows == [["3"]]


# -- idempotency -------------------------------------------------------------------------------


def test_reapplying_keeps_data_and_objects_unique(pg: Any) -> None:
    """The fixture applied the schema twice already; once more with data present changes nothing."""
    query = (
        "select (select count(*) from public.profiles),"
        " (select count(*) from pg_policies where tablename in ('profiles', 'objects')),"
        " (select count(*) from pg_trigger where not tgisinternal"
        "   and tgrelid in ('auth.users'::regclass, 'public.profiles'::regclass)),"
        " (select count(*) from storage.buckets);"
    )
    before = pg.run(query)
    pg.run_file(SCHEMA_SQL, user="postgres")
    assert pg.run(query) == before == [["3", "7", "3", "2"]]
