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

Then I/O:

- ``metadata``: the published v1.0 type extract (package data) and checks of bodies against it.
- ``client``: the HTTP client (tokens, retries, ``$batch``, Graph errors).
- ``extensions``: directory extension properties.
- ``writes``: the Cloud Sync write steps, shared by the ``graph`` and ``local`` targets.
- ``provider``: the ``graph`` target, built on the modules above.

The local tenant and the emulator use the pure modules and ``metadata`` to hold configurations exactly
as the service does; nothing here imports the command line.
"""
