import sys

from nandoctor.cli.main import main

sys.exit(main())
