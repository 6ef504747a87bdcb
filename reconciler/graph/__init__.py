"""Microsoft Graph: everything the tool knows about the synchronization API, in one package.

- ``shapes``: the service's JSON shapes and how they map onto the model (pure, no I/O).
- ``template``: the embedded job template schemas (package data) and their default mappings.
- ``metadata``: the published v1.0 type extract (package data) and checks of bodies against it.
- ``client``: the HTTP client (tokens, retries, ``$batch``, Graph errors).
- ``writes``: the Cloud Sync write steps, shared by the ``graph`` and ``local`` targets.
- ``provider``: the ``graph`` target, built on the modules above.

The local tenant and the emulator use ``shapes`` and ``metadata`` to hold configurations exactly as
the service does; nothing here imports the command line.
"""
