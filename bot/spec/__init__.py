"""How commands are declared and read: the registry of declarations, the parser, and help text derived from them."""
