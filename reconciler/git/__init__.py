"""Everything git: the repository (``repo``, the only module that runs git), and the desired state at
commits (``history``: at a ref, changed since a ref, the diff between two commits).

I/O: reads repositories; ``repo.sync_branch`` also fetches into a cache folder.
"""
