// PullImage's handling of the AuthConfig: credentials reach the puller only for the registry the
// image lives on, and a malformed reference fails as the pull's own error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pullImage } from './image-pull.js';
import type { PullImageRequest__Output } from '../gen/runtime/v1/PullImageRequest.js';
import type { AuthConfig__Output } from '../gen/runtime/v1/AuthConfig.js';
import type { ImageService } from '../../images/service.js';
import type { Credentials } from '../../images/registry/auth.js';
import { parseReference } from '../../images/reference.js';
import { rejectsWith } from '../../common/assert-error.js';

const ID = `sha256:${'e'.repeat(64)}`;

/** An ImageService whose pull records the credentials and parses the name as the real one does. */
function fakeImages(): { images: ImageService; creds: (Credentials | undefined)[] } {
  const creds: (Credentials | undefined)[] = [];
  const images = {
    pull: async (name: string, c: Credentials | undefined) => {
      parseReference(name);
      creds.push(c);
      return { image: { id: ID } };
    },
  } as unknown as ImageService;
  return { images, creds };
}

function request(image: string, auth: Partial<AuthConfig__Output>): PullImageRequest__Output {
  const full: AuthConfig__Output = { username: '', password: '', auth: '', server_address: '', identity_token: '', registry_token: '', ...auth };
  return { image: { image, annotations: {}, user_specified_image: '', runtime_handler: '' }, auth: full, sandbox_config: null } as PullImageRequest__Output;
}

const live = { signal: new AbortController().signal };

void test('PullImage passes credentials only when server_address names the image registry', async () => {
  const cases: Array<[image: string, server: string, want: Credentials | undefined]> = [
    ['busybox', 'https://index.docker.io/v1/', { username: 'u', password: 'p' }],
    ['registry.example.com/app:1', 'registry.example.com', { username: 'u', password: 'p' }],
    ['registry.example.com/app:1', 'https://index.docker.io/v1/', undefined],
    ['busybox', 'registry.example.com', undefined],
  ];
  for (const [image, server_address, want] of cases) {
    const { images, creds } = fakeImages();
    const res = await pullImage(images)(request(image, { username: 'u', password: 'p', server_address }), live);
    assert.equal(res.image_ref, ID);
    assert.deepEqual(creds, [want], `${image} with ${server_address}`);
  }
});

void test('PullImage of a malformed reference fails with the reference error, not the auth config error', async () => {
  const { images } = fakeImages();
  await rejectsWith(pullImage(images)(request('Bad::Ref', { auth: 'not base64!' }), live), 'SKIFF_IMAGE_REF_INVALID');
});
