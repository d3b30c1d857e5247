// Entry point for tests that need images: build layers from busybox-static and entry lists, push
// them to a TestRegistry with the distribution API, or push the whole e2e fixture set at once.
// The work lives in layer.ts (tar + compression), tree.ts (expected rootfs), push.ts (registry
// API) and fixtures.ts (the fixture set).
export {
  buildLayer,
  buildTar,
  busyboxEntries,
  busyboxLayer,
  opaque,
  rawLayer,
  sha256,
  whiteout,
  type BuiltLayer,
  type Compression,
  type Entry,
  type EntryType,
} from './layer.js';
export {
  computeChainIDs,
  MANIFEST_ACCEPT,
  MEDIA_TYPES,
  PushClient,
  pushImage,
  pushIndex,
  type Credentials,
  type Descriptor,
  type ImageConfig,
  type ImageConfigInput,
  type ImageFormat,
  type ImageIndex,
  type ImageManifest,
  type Platform,
  type PushedImage,
  type PushedIndex,
  type RuntimeConfig,
} from './push.js';
export { applyLayer, expectedTree, type ExpectedTree, type TreeNode } from './tree.js';
export { buildFixtures, SYMLINK_ESCAPE_NAME, type Fixtures, type ImageFixture, type IndexFixture } from './fixtures.js';
