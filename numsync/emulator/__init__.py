"""A local emulator of the Omilia Cloud Platform (OCP) "numbers CSV" Integrations API.

Users rehearse numsync against it, tests run against it, demos show it; it is a
product, not a mock. It serves, on a loopback address only:

- ``POST /auth/realms/master/protocol/openid-connect/token`` (Keycloak shaped),
- ``POST /integrations/api/numbers/csv`` (export) and ``PUT /integrations/api/numbers/csv``
  (execute an operation file),
- ``/_emulator/...`` admin endpoints without auth: ``GET stats``, ``GET state``,
  ``GET log`` (every row carried out, in order, with its cells, status, message and
  whether it changed the number), ``POST numbers``, ``PATCH``/``DELETE numbers/{number}``,
  ``POST reset``.

Run it with ``numsync emulator`` or ``python -m numsync.emulator`` (see
:mod:`numsync.emulator.command`), or in tests with :class:`EmulatorProcess`.

Choices the vendor leaves open, and what the emulator does
---------------------------------------------------------

Auth

- Tokens are opaque random strings kept in memory (lost on restart); access tokens
  live ``--access-ttl`` s (300), refresh tokens ``--refresh-ttl`` s (1800).
- A wrong ``client_id`` -> 401 ``unauthorized_client``; bad username/password -> 401
  ``invalid_grant`` "Invalid user credentials"; an unknown or expired refresh token
  -> 400 ``invalid_grant``; another grant_type -> 400 ``unsupported_grant_type``.
- A refresh grant returns a new access *and* refresh token, each with its full
  lifetime; the old refresh token stays valid until it expires (Keycloak's default,
  no rotation).
- Two-factor is mandatory, as on OCP: every user must send a TOTP code (RFC 6238, six
  digits) in form field ``otp``; ``--no-otp`` turns it off for a quick local try (a
  password alone then logs in). Each user has a TOTP secret: its own, given with
  ``--user-totp USER=BASE32`` (repeatable; kept in the ``--state`` file), or else the
  emulator's, ``--totp-secret BASE32``, default ``JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP`` (the
  seeded users' documented secret, for tests and demos only). As Keycloak's OTP policy: codes last
  ``--otp-period`` s (30), a code of up to ``--otp-look-around`` steps (1) before or after
  now is accepted, and an accepted code is never accepted again. Answers, all HTTP 401
  ``invalid_grant`` (our choice among Keycloak's): no code -> "Invalid user credentials"; a
  wrong, expired or reused code -> "Invalid totp". The password is checked first, so a wrong
  password is "Invalid user credentials" whatever the code. ``GET /_emulator/stats`` counts
  ``otp_accepted``, ``otp_refused`` and ``otp_reused``.
- Missing, unknown or expired bearer tokens -> 401 JSON ``{"error", "message"}``.

Export (``POST``)

- The body is optional. A JSON object ``{"group_ids": [...]}`` limits the export to
  those groups; any other body (empty, ``{}``, not JSON) means no filter; a
  ``group_ids`` that is not a list of strings -> 400 ``invalid_filter``.
- Only numbers in groups the caller may see (its groups; ``*`` = all), any role.
- ``text/csv; charset=utf-8``, the 12 columns in the documented order, CRLF line
  ends, RFC 4180 minimal quoting, no BOM, rows sorted by NUMBER. COUNTRY is the ISO
  region of the number; MINIAPP_* come from the miniapp registry and are empty when
  the number is unattached (or attached out of band to an unknown id). PROVIDER is
  never exported.

Operation upload (``PUT``)

- Encoding: ``multipart/form-data`` with the CSV in the file field named ``file``
  (the default), or a raw body with ``Content-Type: text/csv`` (or ``application/csv``).
  Anything else -> 415. UTF-8 with optional BOM; CRLF or LF; quoted newlines allowed.
- Columns are case-insensitive and order-free; only OPERATION, GROUP_ID, NUMBER,
  PROVIDER, MINIAPP_ID, PHONE_NUMBER_SET_ID, APPLICATION_TAG, LOCALE, NOTE are
  allowed. Export-only columns (COUNTRY, MINIAPP_NAME, ...) count as unknown: the
  file is refused. NUMBER is required as a column. Blank lines are skipped and not
  counted; every other row must have as many cells as the header. Cells are
  stripped of surrounding whitespace.
- File-level checks, in this order, before anything is applied; the first failure
  refuses the whole file and changes nothing (answer ``{"error", "message",
  "applied": 0}``): OWNER role (403) -> readable CSV/encoding (400/415) -> known,
  unique columns incl. OPERATION and NUMBER (400) -> every OPERATION one of
  Create/Update/Attach/Detach/Delete, case-insensitive (400 naming the row) ->
  PROVIDER column when any row is a Create (400) -> rows per operation within the
  limits *per file* (400 ``limit_exceeded``, e.g. ``Delete: 11 rows exceed the
  limit of 10 per file``; defaults Update 800, Attach 800, Detach 100, Delete 10,
  Create 100) -> permission on every touched group (403 listing the first rows;
  for existing numbers their current group, for Create the row's GROUP_ID too) ->
  the same NUMBER in two rows (400 ``duplicate_number``: one row per number and file).
- Rows are then applied in file order, each on its own: NOT atomic across rows; a
  failing row neither undoes nor stops the others. Answer 200 ``{"applied", "failed",
  "results": [{"row", "NUMBER", "OPERATION", "status", "message"}]}``, ``row`` being
  the 1-based data row.
- Empty cell = leave as is; the literal ``<NULL>`` (exact case) clears a field.
- Each operation reads only its documented columns; other non-empty cells on its
  row are ignored and the row's message says so ("ignored on Create: NOTE").
  Create takes only GROUP_ID/NUMBER/PROVIDER: the rest follows in a later Update.
- Create: NUMBER must be valid E.164 (phonenumbers), GROUP_ID must exist, the number
  must not exist ("number already exists").
- A GROUP_ID on a non-Create row must equal the number's group ("GROUP_ID cannot be
  changed"); empty means "the number's group". The vendor documents GROUP_ID for
  Create only and leaves open whether other rows may carry the group they expect;
  the emulator takes it as that guard, and numsync writes it on every Detach and
  Delete (of a removal, a retirement or an update): a Delete OCP carries out late (after its answer was lost) then fails on a
  number that recovery has meanwhile re-created in its new group, instead of releasing it.
- Update: MINIAPP_ID must exist and belong to the number's group (setting it
  attaches; ``<NULL>`` detaches); PHONE_NUMBER_SET_ID must be a set of the number's
  group; LOCALE must be a language tag with hyphens (``en-US``; ``en_US`` is refused),
  stored as given. An Update that leaves a number attached without LOCALE — by
  attaching an unattached number or by clearing LOCALE — fails.
- Attach: MINIAPP_ID and LOCALE are mandatory; re-attaching to another miniapp is allowed.
- Detach clears MINIAPP_ID only: LOCALE, set, tag and note are kept. Detaching an
  unattached number succeeds as a no-op.
- Delete of an attached number fails ("detach it first"); of an unknown one, "unknown number".
- Every PUT that reaches the API is counted in stats, refused ones and 401s included (one a
  fault answers before processing, `status` or `reset_before`, is not); the state file is
  written when at least one row applied.
- PUTs may arrive side by side (numsync's ``apply_concurrency``). Each file is checked
  and applied in one step of the event loop, so the rows of two files never interleave
  and the log shows files whole, in the order they were applied. Stats count
  ``puts_in_flight`` and ``max_puts_in_flight`` (most PUTs between arrival and answer at
  once, an injected delay included): how far a client overlaps its uploads. The fault
  ``{target: put, kind: latency, seconds: 0.2}`` gives every PUT the server time a real
  tenant takes (``--faults``, see :mod:`numsync.emulator.faults`).

Admin endpoints and state

- ``/_emulator/*`` need no auth (loopback only). ``PATCH``/``POST numbers`` do no
  domain validation (that is the point: simulate out-of-band edits and odd live
  data); they only check the column names and that values are strings or null.
- ``POST /_emulator/reset`` restores the state the process started with (the seed,
  or the state file as loaded); stats and tokens are kept.
- ``GET /_emulator/state`` never shows passwords or tokens. Faults (``--faults``,
  see :mod:`numsync.emulator.faults`) can also make it finish a file after answering
  (``late``), serve an export that lags its writes (``lag``), echo a request in its
  error body (``echo``), play a second writer (``writer``) and end the export with an empty
  column without a name (``blank_column``). A fault rule's ``message:``
  (and ``error:``) set the JSON body of the answer it gives, so every answer on the vendor's
  "HTTP Code Responses" page can be played with the vendor's words: 202, 402, 409, a 403
  "No available licenses" (the emulator's own 403s name the role or the group), a 401, a 400
  ``limit_exceeded``. The ``--state`` file
  does hold the emulator's login passwords (so a restart can log in) and is
  written with mode 0600, atomically, after every successful change.
- Only loopback hosts are accepted by the command: demo passwords and the admin
  endpoints must not be reachable from a network.

Clock

- Every answer carries a ``Date`` header (RFC 9110), as OCP's do; numsync checks change
  freezes by it as well as by the local clock. ``--clock-offset SECONDS`` runs that clock
  ahead of the machine's (negative: behind), e.g. ``--clock-offset 2592000`` is 30 days
  ahead, to try a skewed runner. Only the header moves: token lifetimes and two-factor
  codes keep the real clock.
"""

from numsync.emulator.app import create_app
from numsync.emulator.process import EmulatorProcess
from numsync.emulator.state import TenantState, seed_tenant

__all__ = ["EmulatorProcess", "TenantState", "create_app", "seed_tenant"]
