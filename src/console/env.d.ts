/** Stylesheets are bundled by esbuild (scripts/build-console.mjs) into the one hashed CSS file. */
declare module '*.css';
