import type { GoBinarySpec } from './go-binary';

const TEMPORAL_OS: Record<string, string> = { linux: 'linux', darwin: 'darwin' };
const TEMPORAL_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

/**
 * The Temporal CLI with its dev server (server 1.29.1). Later CLI tags carry a `replace` directive
 * and cannot be go-installed. Each release archive is pinned by its SHA-256: an archive that does
 * not match is never run, and the binary is built instead.
 */
export const TEMPORAL_CLI: GoBinarySpec = {
  name: 'temporal',
  version: '1.5.1',
  module: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  envVar: 'DRO_TEMPORAL_BIN',
  typicalBuild: '4-8 minutes on 2 cores',
  download: {
    archiveUrl: (platform, arch) => {
      const os = TEMPORAL_OS[platform];
      const cpu = TEMPORAL_ARCH[arch];
      if (os === undefined || cpu === undefined) return undefined;
      return `https://github.com/temporalio/cli/releases/download/v1.5.1/temporal_cli_1.5.1_${os}_${cpu}.tar.gz`;
    },
    sha256: {
      'linux-x64': 'ddc95e08b0b076efd4ea9733a3f488eb7d2be875f8834e616cd2a37358b4852d',
      'linux-arm64': 'bd1b0db9f18b051026de8bf6cc1505f2510f14bbb7a8b9a4a91fff46c77454f5',
      'darwin-x64': 'bbb73e2a31135abe50a1f1cdb35030c42961df618e8ce9c60ae89f201540c5d9',
      'darwin-arm64': 'cca01b7ea35ad56e2a328d9ae596bf716bd22313ef63c7a761c88354457c2415',
    },
    member: 'temporal',
  },
};

/** versitygw, a maintained S3 gateway with a posix backend; the integration tests' S3 server. */
export const VERSITYGW: GoBinarySpec = {
  name: 'versitygw',
  version: '1.8.0',
  module: 'github.com/versity/versitygw/cmd/versitygw@v1.8.0',
  envVar: 'DRO_VERSITYGW_BIN',
  typicalBuild: '3-6 minutes on 2 cores',
};
