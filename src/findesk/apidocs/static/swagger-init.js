// Starts Swagger UI on /docs. A file, not an inline script: the page's policy runs only
// scripts served by findesk.
(() => {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // never send the document to an outside validator
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
