"""What a configuration does to on-premises objects: the sample directory (``directory``), the
evaluation of mappings and scope for one object (``evaluate``), ``preview`` (what a configuration's
mappings give sample objects, before and after a change), and ``on_demand`` (the embedded tenant's
``provisionOnDemand``: one object through the service's steps, written to the tenant's cloud objects).

I/O: ``directory`` reads directory files and writes a local tenant's directory; ``on_demand`` reads
and writes the tenant store; the rest is pure.
"""
