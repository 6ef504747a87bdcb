"""What a configuration does to on-premises objects: the sample directory (``directory``), the
evaluation of mappings and scope for one object (``evaluate``), and ``preview`` (what a configuration's
mappings give sample objects, before and after a change).

I/O: ``directory`` reads directory files and writes a local tenant's directory; the rest is pure.
"""
