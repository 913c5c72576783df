"""A plug-in module that fails while being imported, as a broken third-party variant would."""

raise RuntimeError("this plug-in is broken (test)")
