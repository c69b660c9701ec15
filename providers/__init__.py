"""Provider clients and their pure parsers, the credential store, the HTTP layer and the sandbox."""
