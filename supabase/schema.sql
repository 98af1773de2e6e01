-- SoraStudio Cloud: database schema for a Supabase project.
--
-- Tables, triggers, row-level security and Storage buckets/policies. Idempotent: every statement
-- creates-if-missing or replaces, so running the whole file again (after an edit, or by mistake)
-- is safe and never drops data. Apply as the `postgres` role (SQL editor or psql; see README.md).
--
-- Tasks themselves live in Upstash Redis, not here; Postgres holds only the per-user profile,
-- and Storage holds the videos.
--
-- Conventions: `(select auth.uid())` rather than `auth.uid()` in policies, so Postgres evaluates
-- it once per statement instead of once per row (Supabase's RLS performance advice); functions
-- pin `search_path = ''` and name every object by schema, so nobody can shadow them.

begin;

-- ---------------------------------------------------------------------------------------------
-- Profiles: one row per auth user, created by a trigger (clients never insert).
-- ---------------------------------------------------------------------------------------------

create table if not exists public.profiles (
    -- Same id as auth.users; deleting the auth user removes the profile with it.
    id uuid primary key references auth.users (id) on delete cascade,
    -- Copy of auth.users.email, kept in sync by a trigger, so the app can read it with the
    -- user's own token (auth.users is not exposed to clients).
    email text,
    display_name text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    -- Users edit this column themselves: bound it.
    constraint profiles_display_name_length check (char_length(display_name) <= 80)
);

comment on table public.profiles is
    'One row per auth user (created by trigger on auth.users); users read and rename only their own.';

-- Display name from the sign-up metadata (`data` in supabase.auth.sign_up; OAuth providers fill
-- full_name/name), trimmed and cut to fit the check above so a long name never blocks a sign-up.
-- security definer: GoTrue inserts into auth.users as supabase_auth_admin, which has no rights on
-- public.profiles; the function runs as its owner (postgres) instead.
create or replace function public.handle_new_user()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into public.profiles (id, email, display_name)
    values (
        new.id,
        new.email,
        left(nullif(btrim(coalesce(
            new.raw_user_meta_data ->> 'display_name',
            new.raw_user_meta_data ->> 'full_name',
            new.raw_user_meta_data ->> 'name'
        )), ''), 80)
    )
    on conflict (id) do nothing;
    return new;
end;
$$;

-- Keeps profiles.email equal to the confirmed auth email after an email change.
create or replace function public.handle_user_email_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update public.profiles set email = new.email where id = new.id;
    return new;
end;
$$;

create or replace function public.set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at = now();
    return new;
end;
$$;

-- Supabase grants execute on new public functions to the API roles, which would list these in
-- the REST API's RPC endpoints; they are only meant to run as triggers.
revoke execute on function public.handle_new_user() from public, anon, authenticated;
revoke execute on function public.handle_user_email_change() from public, anon, authenticated;
revoke execute on function public.set_updated_at() from public, anon, authenticated;

-- `create or replace trigger` (PostgreSQL 14+; Supabase runs 15+), not drop + create: on
-- Supabase `postgres` may create triggers on auth.users but not drop them (it is not the owner).
create or replace trigger on_auth_user_created
    after insert on auth.users
    for each row execute function public.handle_new_user();

create or replace trigger on_auth_user_email_changed
    after update of email on auth.users
    for each row when (old.email is distinct from new.email)
    execute function public.handle_user_email_change();

create or replace trigger profiles_set_updated_at
    before update on public.profiles
    for each row execute function public.set_updated_at();

-- Users who signed up before this schema was applied get their profile too.
insert into public.profiles (id, email, display_name)
select
    u.id,
    u.email,
    left(nullif(btrim(coalesce(
        u.raw_user_meta_data ->> 'display_name',
        u.raw_user_meta_data ->> 'full_name',
        u.raw_user_meta_data ->> 'name'
    )), ''), 80)
from auth.users as u
on conflict (id) do nothing;

-- Privileges: Supabase's default privileges give anon and authenticated everything on new public
-- tables. Narrow that to what the app needs, so even a policy mistake cannot let a client insert,
-- delete, or rewrite id/email/timestamps: signed-in users may read, and change display_name only.
-- (Revoking on the table also drops earlier column grants, so a rerun starts from the same state.)
revoke all on table public.profiles from anon, authenticated;
grant select on table public.profiles to authenticated;
grant update (display_name) on table public.profiles to authenticated;
grant all on table public.profiles to service_role;

-- Row-level security: each user sees and updates only their own row. No insert/delete policies,
-- so those are denied even if a grant comes back. service_role bypasses RLS (server side only).
alter table public.profiles enable row level security;

drop policy if exists "profiles: owner can read" on public.profiles;
create policy "profiles: owner can read" on public.profiles
    for select to authenticated
    using ((select auth.uid()) = id);

drop policy if exists "profiles: owner can update" on public.profiles;
create policy "profiles: owner can update" on public.profiles
    for update to authenticated
    using ((select auth.uid()) = id)
    with check ((select auth.uid()) = id);

-- ---------------------------------------------------------------------------------------------
-- Storage buckets. Both private: files are reached through signed URLs or the owner's token.
-- `on conflict do nothing` keeps settings changed later in the dashboard.
-- ---------------------------------------------------------------------------------------------

-- uploads: videos users send from the browser straight to Storage (Vercel functions cap bodies
-- at 4.5 MB), at `<userId>/<file>`. 500 MB per file, videos only. The project's global upload
-- limit (Storage settings; 50 MB on the Free plan) still applies on top of this one.
insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values ('uploads', 'uploads', false, 524288000, array['video/*'])
on conflict (id) do nothing;

-- results: written only by the worker with the service role, at `<userId>/<taskId>/<file>`
-- (reports, thumbnails, generated videos: any type, so no mime list).
insert into storage.buckets (id, name, public)
values ('results', 'results', false)
on conflict (id) do nothing;

-- ---------------------------------------------------------------------------------------------
-- Storage policies (storage.objects already has RLS enabled by Supabase, and is shared by all
-- buckets, hence the bucket check and bucket-prefixed names). The first folder of an object's
-- path is the owner's user id; anon gets no policy, so no access. The service role bypasses RLS.
-- ---------------------------------------------------------------------------------------------

drop policy if exists "uploads: owner can upload" on storage.objects;
create policy "uploads: owner can upload" on storage.objects
    for insert to authenticated
    with check (
        bucket_id = 'uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

drop policy if exists "uploads: owner can read" on storage.objects;
create policy "uploads: owner can read" on storage.objects
    for select to authenticated
    using (
        bucket_id = 'uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

-- Overwrite (upsert) and move: `with check` keeps the new path inside the owner's folder too.
drop policy if exists "uploads: owner can update" on storage.objects;
create policy "uploads: owner can update" on storage.objects
    for update to authenticated
    using (
        bucket_id = 'uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    )
    with check (
        bucket_id = 'uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

drop policy if exists "uploads: owner can delete" on storage.objects;
create policy "uploads: owner can delete" on storage.objects
    for delete to authenticated
    using (
        bucket_id = 'uploads'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

-- results: read-only for the owner; only the worker (service role) writes.
drop policy if exists "results: owner can read" on storage.objects;
create policy "results: owner can read" on storage.objects
    for select to authenticated
    using (
        bucket_id = 'results'
        and (storage.foldername(name))[1] = (select auth.uid())::text
    );

commit;
