"""The XSS corpus: hostile HTML and names that must stay inert wherever findesk shows them.

Each payload would call the detector a test page exposes (``findeskPwned``), set
``window.__pwned`` or open a dialog, were it to run.
"""

HOSTILE = [
    '<script>window.__pwned="script";findeskPwned("script");alert("script")</script>',
    "<img src=x onerror=\"window.__pwned='img';findeskPwned('img');alert('img')\">",
    "<a href=\"javascript:window.__pwned='link';findeskPwned('link');alert('link')\">Claim 1</a>",
    "<a href=\"JaVaScRiPt:findeskPwned('link-case')\">Claim 2</a>",
    "<a href=\"&#106;avascript:findeskPwned('link-entity')\">Claim 3</a>",
    "<a href=\" javascript:findeskPwned('link-space')\">Claim 4</a>",
    "<a href=\"data:text/html,<script>opener.findeskPwned('data')</script>\">Claim 5</a>",
    '<svg><script>findeskPwned("svg")</script></svg>',
    "<svg onload=\"findeskPwned('svg-onload')\"></svg>",
    "<iframe src=\"javascript:parent.findeskPwned('iframe')\"></iframe>",
    "<iframe srcdoc=\"<script>parent.findeskPwned('srcdoc')</script>\"></iframe>",
    "<details open ontoggle=\"findeskPwned('details')\">x</details>",
    "<p onclick=\"findeskPwned('click')\">Click me</p>",
    "<form action=\"javascript:findeskPwned('form')\"><button>Go</button></form>",
    "<base href=\"javascript:findeskPwned('base')//\">",
    "<object data=\"javascript:findeskPwned('object')\"></object>",
    "<math><mtext><table><mglyph><style><img src=x onerror=\"findeskPwned('mxss')\">",
]
NAME = "Eve <img src=x onerror=\"findeskPwned('name')\">"
TITLE = "Refund <script>findeskPwned('title')</script>"
