// Starts Swagger UI on the server's own OpenAPI document (kept out of the page for the CSP).
const specUrl = document.currentScript.dataset.specUrl;
window.ui = SwaggerUIBundle({ url: specUrl, dom_id: "#swagger-ui", deepLinking: true });
