"""Rendering results for people: the pieces the text, HTML and CDS views share."""
