#!/usr/bin/env node
// Entry point for the `dro` command: the TypeScript sources run through tsx's require hook.
require('tsx/cjs');
require('../cli/main.ts')
  .main(process.argv)
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
