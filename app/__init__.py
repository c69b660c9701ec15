"""Beat: settings, the Faust app factory, the CLI, the HTTP facade and the embedded stack."""
