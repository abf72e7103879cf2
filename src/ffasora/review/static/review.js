// Keys 1-5 choose the quality score (ignored while typing a comment).
document.addEventListener("keydown", function (event) {
  if (event.target.tagName === "TEXTAREA" || event.ctrlKey || event.metaKey || event.altKey) return;
  var box = document.getElementById("quality-" + event.key);
  if (box) { box.checked = true; box.focus(); }
});
