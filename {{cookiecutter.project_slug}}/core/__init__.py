"""The chatbot, independent of Streamlit: configuration, session store, models and one chat turn."""
