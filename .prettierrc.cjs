// Prettier settings of OCA's addons template for Odoo 18.0 (XML and JavaScript).
// A JavaScript file rather than .prettierrc.yml: prettier 3 imports a plugin named by
// a string from the project folder, where pre-commit's isolated node environment has
// none; require.resolve finds it through the NODE_PATH that pre-commit sets.
/** @type {import('prettier').Config} */
module.exports = {
    plugins: [require.resolve("@prettier/plugin-xml")],
    bracketSpacing: false,
    printWidth: 88,
    proseWrap: "always",
    semi: true,
    trailingComma: "es5",
    // Whitespace inside XML text can be meaningful (QWeb, field values): never move it.
    xmlWhitespaceSensitivity: "preserve",
};
