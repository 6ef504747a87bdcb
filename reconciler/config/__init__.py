"""The desired state on disk: finding, reading and checking the YAML files, and loading the model.

The only package that uses PyYAML (``yamlio``), jsonschema and fastjsonschema (``schema``). Entry
points: ``load.load_paths`` and ``load.load_files``.
"""
