from nextbest.cli import main

raise SystemExit(main())
