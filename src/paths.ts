// Locations of mlserve's own run-time assets.
import {fileURLToPath} from 'node:url'

/** templates/ at the package root (this file compiles to dist/paths.js). */
export const TEMPLATES_DIR = fileURLToPath(new URL('../templates/', import.meta.url))

export const templatePath = (...parts: string[]): string => TEMPLATES_DIR + parts.join('/')
