import type { GoBinarySpec } from './go-binary';

/** The Temporal CLI with its dev server (server 1.29.1). Later CLI tags carry a `replace` directive and cannot be go-installed. */
export const TEMPORAL_CLI: GoBinarySpec = {
  name: 'temporal',
  version: '1.5.1',
  module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  envVar: 'DRO_TEMPORAL_BIN',
  typicalBuild: '4-8 minutes on 2 cores',
};

/** versitygw, a maintained S3 gateway with a posix backend; the integration tests' S3 server. */
export const VERSITYGW: GoBinarySpec = {
  name: 'versitygw',
  version: '1.8.0',
  module: 'github.com/versity/versitygw/cmd/versitygw@v1.8.0',
  envVar: 'DRO_VERSITYGW_BIN',
  typicalBuild: '3-6 minutes on 2 cores',
};
