"""Microsoft Graph: everything the tool knows about the synchronization API, in one package.

The service's JSON shapes and the model, pure (no I/O), each module importing only those above it:

- ``identity``: template and job ids, our tags, which job is a configuration's own, job status.
- ``fields``: fields of service JSON read with their types checked; the one "cannot be read" error.
- ``template``: the embedded job template schemas and application templates (package data).
- ``mappings``: one ``attributeMapping`` <-> one model ``Mapping``; the password-hash row.
- ``secrets``: the secret set <-> ``Settings``.
- ``reading``: a job schema read into scope and mappings; ``observe`` (one configuration); the
  templates' default mappings.
- ``checks``: what the service sent, refused before it is misread; a schema checked and read at once,
  from its JSON text too.
- ``editing``: a job schema edited to say what the desired state says, everything else kept.

Then the requests (I/O only through the client, or through the ``Resources`` the writes are given):

- ``metadata``: the published v1.0 type extract (package data) and checks of bodies against it.
- ``tokens``: which bearer token a target gets, and from where (environment, azure-identity).
- ``answers``: Graph's answers read: errors into the error tree, collections, ``$batch`` answers.
- ``client``: the HTTP client (connections, retries, concurrency, paging, ``$batch``).
- ``extensions``: directory extension properties and their attribute definitions.
- ``onprem``: on-premises attribute definitions in a job schema, from a directory discover.
- ``paths``: the synchronization API's paths, and its answers checked on arrival.
- ``primitives``: ``Resources``, what a target supplies to the write steps; the companion jobs.
- ``extension_writes``, ``writes``: the Cloud Sync write steps, shared by the ``graph`` and ``local``
  targets.
- ``listing``, ``reader``, ``resources``, ``provider``: the ``graph`` target: which principals may hold
  a configuration, reading them, the write requests, and the provider built on them.

The local tenant and the emulator use the pure modules and ``metadata`` to hold configurations exactly
as the service does; nothing here imports the command line.
"""
