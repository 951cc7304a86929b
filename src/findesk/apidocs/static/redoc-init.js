// Starts ReDoc on /redoc. ReDoc writes its styles into <style> elements: they carry the nonce
// that this response's policy allows, and no other inline style runs.
(() => {
  "use strict";
  const root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapiUrl, { nonce: root.dataset.nonce }, root);
})();
