"""The command line's subcommands that do more than parse and print, one module per area;
`nami_pipelines.cli` holds the parser and the one-line error handling."""
