from mediasync.cli import main

raise SystemExit(main())
