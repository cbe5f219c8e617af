"""From bytes to typed rows, with no I/O: the one safe XML door (``xmlsafe``), typed Arrow pages
(``parse``) and row identity (``identity``)."""
