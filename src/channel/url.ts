// Channel URLs: the transport is a choice in a string. Each transport parses
// its own part (src/channel/transports/); this is the name the CLI imports.
export { parseUrl, type Endpoint } from './transports/index.js';
