"""Ray Serve applications; each module's `build_app(args)` is a Serve import-path builder."""
