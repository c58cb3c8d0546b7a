"""The local (CPU) profile's stand-ins: models made on this machine, never downloaded."""
