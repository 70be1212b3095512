"""``python -m llmrouter_server`` runs the CLI."""

import sys

from llmrouter_server.cli import main

sys.exit(main())
