-- The parts of a Supabase database that supabase/schema.sql relies on, for tests on plain
-- PostgreSQL. Roles, ownership, column names, grants and function bodies follow Supabase's own
-- setup (supabase/postgres, auth, storage-api) closely enough that the schema is applied with the
-- rights a project's `postgres` role really has, and the RLS policies run the way they do there;
-- everything else a project has (GoTrue's other tables, storage triggers, …) is left out.
-- Run once, as the bootstrap superuser (supabase_admin, as on Supabase), on an empty database.

-- On Supabase `postgres` is not a superuser: it can bypass RLS and owns what it creates, but the
-- auth and storage tables belong to the services' own roles.
create role postgres login createrole createdb bypassrls;
grant usage, create on schema public to postgres;

-- API roles. PostgREST / Storage switch to one of these per request (`set local role`); only
-- service_role skips RLS.
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
-- GoTrue inserts into auth.users as this role: it owns the auth schema but nothing in public,
-- so a profile trigger only works when it is `security definer`.
create role supabase_auth_admin nologin noinherit;

-- Supabase grants its API roles everything in public by default and relies on RLS (and on what
-- each schema revokes) for protection; mirror that so the test sees RLS, not missing grants.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
    grant all on tables to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
    grant all on functions to anon, authenticated, service_role;
alter default privileges for role postgres in schema public
    grant all on sequences to anon, authenticated, service_role;

-- auth ---------------------------------------------------------------------------------------
create schema auth authorization supabase_auth_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table auth.users (
    id uuid primary key,
    email text,
    raw_user_meta_data jsonb,
    raw_app_meta_data jsonb,
    created_at timestamptz default now(),
    updated_at timestamptz default now()
);
alter table auth.users owner to supabase_auth_admin;
-- Everything but ownership: postgres may add triggers and foreign keys, yet not drop a trigger
-- (DROP TRIGGER needs the owner), which is what trips up many copied-in schemas.
grant all on auth.users to postgres;

-- The claims of the request's JWT, as PostgREST/Storage set them: `request.jwt.claims` is the
-- whole payload; older versions also set `request.jwt.claim.sub`.
create function auth.uid() returns uuid language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create function auth.role() returns text language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create function auth.jwt() returns jsonb language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;

-- storage ------------------------------------------------------------------------------------
create role supabase_storage_admin nologin noinherit;
create schema storage authorization supabase_storage_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;

create table storage.buckets (
    id text primary key,
    name text not null,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    avif_autodetection boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[],
    owner_id text
);
create unique index bname on storage.buckets (name);

create table storage.objects (
    id uuid primary key default gen_random_uuid(),
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    version text,
    owner_id text,
    user_metadata jsonb
);
create unique index bucketid_objname on storage.objects (bucket_id, name);

-- Both tables have RLS on and no policies: a project grants access only through its own policies.
alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
grant all on storage.buckets, storage.objects to postgres, anon, authenticated, service_role;
-- Supabase lets postgres create and drop policies on these tables (supautils' policy_grants)
-- without owning them; plain PostgreSQL needs the owner's rights for that.
grant supabase_storage_admin to postgres;

-- Supabase's definition: the path's folders, i.e. split on '/' without the file name.
create function storage.foldername(name text) returns text[] language plpgsql as $$
declare
    _parts text[];
begin
    select string_to_array(name, '/') into _parts;
    return _parts[1:array_length(_parts, 1) - 1];
end
$$;
alter function storage.foldername(text) owner to supabase_storage_admin;
