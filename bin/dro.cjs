#!/usr/bin/env node
// Entry point for the `dro` command: TypeScript sources run through tsx's require hook.
require('tsx/cjs');
require('../cli/main.ts');
