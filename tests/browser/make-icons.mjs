// Draws the web app's PNG icons (web/icons/*.png) from their SVG sources
// with the headless Chromium the browser tests use. Run after changing an
// SVG: node tests/browser/make-icons.mjs

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'icons');

// [source, output, size, transparent corners]: the maskable and Apple icons
// are full-bleed squares (the platform rounds them).
const ICONS = [
  ['icon.svg', 'icon-192.png', 192, true],
  ['icon.svg', 'icon-512.png', 512, true],
  ['icon-maskable.svg', 'icon-maskable-512.png', 512, false],
  ['icon-maskable.svg', 'apple-touch-icon.png', 180, false],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox'],
});
for (const [src, out, size, transparent] of ICONS) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  const svg = fs.readFileSync(path.join(DIR, src), 'utf8').replace('<svg ', `<svg width="${size}" height="${size}" `);
  await page.setContent(`<body style="margin:0;background:transparent">${svg}</body>`);
  await page.screenshot({ path: path.join(DIR, out), omitBackground: transparent });
  await page.close();
}
await browser.close();
